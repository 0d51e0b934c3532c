#!/usr/bin/env node
// Runs a tfjs Layers model (model.json + shards) in node with the pure-JavaScript
// @tensorflow/tfjs runtime on a float32 NHWC batch: the reference for convert_tfjs.py.
//
// usage: NODE_PATH=DIR/node_modules node tfjs_predict.js MODEL_DIR IN.f32 N H W C OUT.f32
// IN.f32 holds N*H*W*C little-endian floats; OUT.f32 receives the model's output (N*K floats).
'use strict';
const fs = require('fs');
const path = require('path');
let tf;
try {
  tf = require('@tensorflow/tfjs');
} catch (e) {
  process.stderr.write('tfjs_predict: @tensorflow/tfjs is not installed; run scripts/fetch_models.sh (it installs it ' +
                       'into the data cache) and set NODE_PATH to its node_modules\n');
  process.exit(1);
}
async function main() {
  const [dir, inFile, n, h, w, c, outFile] = process.argv.slice(2);
  const model = JSON.parse(fs.readFileSync(path.join(dir, 'model.json')));
  const specs = [], bufs = [];
  for (const g of model.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const net = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: model.modelTopology, weightSpecs: specs, weightData}));
  const raw = fs.readFileSync(inFile);
  const x = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [+n, +h, +w, +c]);
  const y = net.predict(x);
  const data = await y.data();
  fs.writeFileSync(outFile, Buffer.from(new Float32Array(data).buffer));
  console.log('tfjs backend ' + tf.getBackend() + ', output shape ' + JSON.stringify(y.shape));
}
main().catch(e => { process.stderr.write('tfjs_predict: ' + e.message + '\n'); process.exit(1); });
