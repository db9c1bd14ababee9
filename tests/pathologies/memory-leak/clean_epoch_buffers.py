"""Clean: predictions are collected per epoch and dropped at the end of each epoch."""

import time

import numpy as np

rng = np.random.default_rng(0)
weights = rng.standard_normal((128, 10))
start = time.monotonic()
epoch = 0
while time.monotonic() - start < 2.5:
    predictions = []
    for _batch in range(40):
        x = rng.standard_normal((64, 128))
        predictions.append(x @ weights)
        time.sleep(0.001)
    accuracy = float((np.concatenate(predictions).argmax(1) == 3).mean())
    epoch += 1
print(epoch, accuracy)
