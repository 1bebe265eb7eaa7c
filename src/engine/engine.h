/* The engine's internal accessors: the forward state behind a session or a
 * batch, for the library's own modules that attach to it (the imatrix
 * collector sets an observer, the LoRA code an adapter). Not in slm.h: tools
 * and users reach these through the public functions built on them. */
#ifndef SLM_ENGINE_H
#define SLM_ENGINE_H

#include "model/transformer.h"
#include "slm.h"

/* The forward state of a session (src/engine/session.c). */
slm_fwd *slm_session_fwd(slm_session *s);
/* The joint pass's forward state of a batch (src/engine/batch.c). */
slm_fwd *slm_batch_fwd(slm_batch *b);

#endif
