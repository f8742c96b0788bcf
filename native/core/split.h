// Splitting a graph between two backends (loadModel's gpuLayers): the first part runs the ops before a cut and hands
// on the one value that crosses it (token rows, through an output_rows op: every token is an output of the first
// part), the second part takes those rows as its input (an input op) and runs the rest. A cut is valid where exactly
// one token-rows value crosses: in a decoder, the residual stream between two layers.
#pragma once

#include <cstdint>

#include "core/graph.h"

// Where the graph's last `layers` attention layers begin: the latest valid cut after the attention op of the layer
// before them and at or before the first of their attention ops; -1 when there is none (or layers is 0 or all).
int aglm_graph_layer_cut(const aglm_graph &g, int layers);
// The number of attention ops (layers) of the graph.
int aglm_graph_layers(const aglm_graph &g);
// Cuts g before op `at` (a valid cut). Both parts keep every weight (same indices; each reads only its own); values
// and cache slots are renumbered per part. *width receives the width of the rows handed on.
aglm_result aglm_graph_split(const aglm_graph &g, int at, aglm_graph *first, aglm_graph *second, int64_t *width);
