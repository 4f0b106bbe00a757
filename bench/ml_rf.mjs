// ml-random-forest (what a JavaScript developer would pick) on the same
// rows, in Node's V8: reads the rows JSON on stdin, prints JSON.
import { RandomForestRegression } from 'ml-random-forest';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const data = JSON.parse(input);
const rf = new RandomForestRegression({
  nEstimators: data.trees,
  maxFeatures: data.mtry,
  replacement: true,
  useSampleBagging: true,
  seed: data.seed,
  treeOptions: { maxDepth: data.max_depth, minNumSamples: data.min_leaf },
});
let t0 = performance.now();
rf.train(data.train_x, data.train_y);
const seconds = (performance.now() - t0) / 1000;
t0 = performance.now();
const predicted = rf.predict(data.test_x).map((v) => Math.expm1(Math.min(Math.max(v, 0), 12)));
const perCaseMs = (performance.now() - t0) / data.test_x.length;
const mae = predicted.reduce((s, p, i) => s + Math.abs(p - data.test_hours[i]), 0) / predicted.length / 24;
console.log(JSON.stringify({ seconds, mae_days: mae, per_case_ms: perCaseMs }));
