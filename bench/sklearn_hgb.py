"""scikit-learn's HistGradientBoostingRegressor with the absolute-error loss
on the rows Retrace's boosting trains on (make bench): same rows, rounds,
depth, leaf size and learning rate, one thread (OMP_NUM_THREADS=1), no early
stopping. Reads JSON on stdin, prints JSON."""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

data = json.load(sys.stdin)
x, y = np.array(data["train_x"]), np.array(data["train_y"])
test_x, test_hours = np.array(data["test_x"]), np.array(data["test_hours"])
model = HistGradientBoostingRegressor(
    loss="absolute_error",
    max_iter=data["trees"],
    max_depth=data["max_depth"],
    min_samples_leaf=data["min_leaf"],
    learning_rate=0.1,
    max_leaf_nodes=None,
    early_stopping=False,
    random_state=data["seed"],
)
t0 = time.perf_counter()
model.fit(x, y)
seconds = time.perf_counter() - t0
t0 = time.perf_counter()
predicted = np.expm1(np.clip(model.predict(test_x), 0, 12))
per_case_ms = (time.perf_counter() - t0) * 1000 / len(test_x)
mae_days = float(np.mean(np.abs(predicted - test_hours)) / 24)
print(json.dumps({"seconds": seconds, "mae_days": mae_days, "per_case_ms": per_case_ms}))
