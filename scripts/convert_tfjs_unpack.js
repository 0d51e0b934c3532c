#!/usr/bin/env node
// Unpacks a TensorFlow.js model that is shipped as JavaScript modules (as the npm
// package nsfwjs does: model.min.js exports the model.json object, each
// group*-shard*.min.js exports its weight bytes as a base64 string) into the
// standard tfjs layout: DIR/model.json plus one binary file per shard.
//
// usage: node convert_tfjs_unpack.js SRC_DIR OUT_DIR
// Only reads the packaged files; writes OUT_DIR/model.json and OUT_DIR/<shard names>.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stderr.write('convert_tfjs_unpack: ' + msg + '\n');
  process.exit(1);
}

const [src, out] = process.argv.slice(2);
if (!src || !out) fail('usage: node convert_tfjs_unpack.js SRC_DIR OUT_DIR');
const modelFile = path.resolve(src, 'model.min.js');
if (!fs.existsSync(modelFile)) fail(modelFile + ' does not exist; give the folder holding model.min.js');
const model = require(modelFile);
if (!model || !model.modelTopology || !model.weightsManifest)
  fail(modelFile + ' does not export a tfjs model (no modelTopology/weightsManifest)');
fs.mkdirSync(out, {recursive: true});
for (const group of model.weightsManifest) {
  for (const p of group.paths) {
    const shardFile = path.resolve(src, p + '.min.js');
    if (!fs.existsSync(shardFile)) fail('weight shard ' + shardFile + ' is missing');
    const b64 = require(shardFile);
    if (typeof b64 !== 'string') fail(shardFile + ' does not export a base64 string');
    fs.writeFileSync(path.join(out, p), Buffer.from(b64, 'base64'));
  }
}
fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify(model));
console.log('unpacked ' + src + ' -> ' + out);
