/* The fine-tuning loop's state (finetune.c), shared with the checkpoint
 * and loss-plot code (finetune_ckpt.c). */
#ifndef SLM_TRAIN_FINETUNE_H
#define SLM_TRAIN_FINETUNE_H

#include "train/data.h"
#include "train/trainer.h"

typedef struct ft_point {
    int step;
    float loss;
} ft_point;

struct slm_finetune {
    const struct slm_model *m;
    slm_finetune_params p;
    char *out, *ckpt_dir;
    train_data train, val;     /* sequences as trained (packed when asked) */
    train_data raw;            /* the training file's examples before packing */
    slm_trainer *tr;
    slm_finetune_summary sum;
    /* loop position: everything a bit-identical resume needs */
    int step, total_steps;
    int epoch, pos;            /* next sequence: order[pos] of this epoch */
    int *order;                /* this epoch's permutation of train */
    /* validation */
    double best_val;
    int best_step, bad_evals;
    bool stopped;
    float *best;               /* the trainable floats at the best validation loss */
    /* history for the plot */
    ft_point *hist, *vhist;
    int n_hist, n_vhist, cap_hist, cap_vhist;
    double t_start, tokens_done;
};

/* The permutation of n items for an epoch (a function of seed and epoch only). */
void ft_shuffle(int *order, int n, uint64_t seed, int epoch);

slm_status ft_checkpoint_save(struct slm_finetune *f);
slm_status ft_checkpoint_load(struct slm_finetune *f);
/* Writes the loss plot to path (temporary file + rename). */
slm_status ft_write_svg(const struct slm_finetune *f, const char *path);

#endif
