"""scikit-learn's RandomForestRegressor on the rows Retrace trains on
(make bench): same rows, trees, depth, leaf size and features per split,
single-threaded. Reads JSON on stdin, prints JSON."""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import RandomForestRegressor

data = json.load(sys.stdin)
x, y = np.array(data["train_x"]), np.array(data["train_y"])
test_x, test_hours = np.array(data["test_x"]), np.array(data["test_hours"])
model = RandomForestRegressor(
    n_estimators=data["trees"],
    max_depth=data["max_depth"],
    min_samples_leaf=data["min_leaf"],
    max_features=data["mtry"],
    n_jobs=1,
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
