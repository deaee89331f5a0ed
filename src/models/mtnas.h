/* mtnas.h -- what the route search (train/search.h) and the recorder need of
 * the mtnas family beyond model.h: its blocks, their route choices, the
 * route a MODEL_TRAIN pass takes, and what a route uses.
 *
 * Blocks, in order: the sub-networks of layers 2..L (layer by layer, s1..sH;
 * named "l2.s1", ...), then the T tasks ("t1", ...): B = (L−1)·H + T.
 * Block b's route k in [0, choices[b]) is the value subset with bit mask
 * (k / nq) + 1 (bit i: sub-network i+1 of the previous layer) and the query
 * source k % nq: sub-network q+1 of the previous layer, or the root feature
 * (q = H with query_set = prev+root; the only source, q = 0, with
 * query = root).  With gate = mean there is no query choice (nq = 1).
 * Block b's architecture logits are the TENSOR_ARCH tensor "arch.<block>"
 * [1, choices[b]]; all blocks' logits lie side by side in
 * params[n_weights, n_params), block by block. */
#ifndef MTLAB_MTNAS_H
#define MTLAB_MTNAS_H

#include <stdbool.h>
#include <stddef.h>

#include "models/model.h"

#define MTNAS_MAX_LEVELS  5
#define MTNAS_MAX_SUBNETS 6
#define MTNAS_MAX_BLOCKS  ((MTNAS_MAX_LEVELS - 1) * MTNAS_MAX_SUBNETS + MODEL_MAX_TASKS)

extern const model_ops_t model_mtnas_ops;

/* Whether m is an mtnas model. */
bool mtnas_is(const model_t *m);
/* The blocks' route counts: returns B and points *choices at [B]. */
int mtnas_choices(const model_t *m, const int **choices);
/* Block b's name ("l2.s1", "t1") into out[n]. */
void mtnas_block_name(const model_t *m, int b, char *out, size_t n);
/* Decodes route k of block b: its value bit mask over the previous layer's
 * sub-networks and its query source (0..H-1 a sub-network, H the root;
 * -1 none: gate = mean). */
void mtnas_route_decode(const model_t *m, int b, int k, unsigned *mask, int *query);
/* The 1-based layer that block b feeds (2..L for sub-network blocks, L+1
 * for task blocks) and its index there (sub-network or task, 0-based). */
void mtnas_block_position(const model_t *m, int b, int *layer, int *index);

/* Sets the route MODEL_TRAIN passes take (route[B]), until cleared; NULL
 * clears it: MODEL_TRAIN then takes the derived route, as MODEL_EVAL always
 * does. */
void mtnas_set_route(model_t *m, const int *route);
/* route[B] = the derived route: the argmax of each block's logits (the
 * lowest index among ties). */
void mtnas_derived_route(const model_t *m, int *route);
/* The route of the last forward pass (what arch_gradient scores). */
const int *mtnas_last_route(const model_t *m);
/* used[n_tensors]: whether a pass on `route` reads tensor i (the root, the
 * sub-networks some used block reads, the gates of the chosen routes, the
 * towers); architecture tensors are not. */
void mtnas_tensors_used(const model_t *m, const int *route, bool *used);
/* The parameter count of the model that `route` derives: the weights of the
 * tensors it uses (no architecture logits). */
size_t mtnas_route_params(const model_t *m, const int *route);

#endif
