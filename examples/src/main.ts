/** `npm start`: the main job on the embedded default. */
console.log('Weft: the engine is not built yet. `npm start` will load models/demo-gpt2 and run the logit-lens and IOI-patching experiments.')
