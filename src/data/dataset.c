#include "data/dataset.h"
#include "core/mem.h"

#include <stdlib.h>

void data_free(data_t *data) {
    dataset_t *splits[] = {&data->train, &data->val, &data->test};
    for (int i = 0; i < 3; i++) {
        mem_free(splits[i]->x);
        mem_free(splits[i]->y);
        splits[i]->x = splits[i]->y = NULL;
        splits[i]->n = 0;
    }
}
