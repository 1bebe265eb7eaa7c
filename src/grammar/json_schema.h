/* JSON Schema -> GBNF from a value already parsed by the eval JSON reader
 * (src/eval/json.h), for callers that hold the schema inside a larger
 * document (an `slm eval` item's "json_schema"). Same rules and errors as
 * slm_json_schema_to_gbnf. */
#ifndef SLM_GRAMMAR_JSON_SCHEMA_H
#define SLM_GRAMMAR_JSON_SCHEMA_H

#include "eval/json.h"
#include "slm.h"

slm_status json_schema_val_to_gbnf(const json_val *schema, char **gbnf);

#endif
