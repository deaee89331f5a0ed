#include "data/dataset.h"

#include <stdlib.h>

void data_free(data_t *data) {
    dataset_t *splits[] = {&data->train, &data->val, &data->test};
    for (int i = 0; i < 3; i++) {
        free(splits[i]->x);
        free(splits[i]->y);
        splits[i]->x = splits[i]->y = NULL;
        splits[i]->n = 0;
    }
}
