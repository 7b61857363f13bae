/** @weft/core/testing — fixtures for tests only: a hand-written demo-gpt2 manifest and a program builder. */
export { demoGpt2Manifest } from './demo-gpt2-manifest.js'
export { programOf } from './program-of.js'
