/**
 * @weft/workbench: a web page over the SDK to browse the fabric and run experiments (logit lens, activation
 * patching, attention patterns, steering), embedded, against one provider, or across the directory.
 * `weft workbench` serves it; `createBackend` + `startWorkbench` embed it.
 */
export { createBackend, CapturingExecutor, withCapture } from './backend.js'
export type { Backend, BackendOptions, FabricView, FabricProvider, Mode } from './backend.js'
export { createWorkbenchApp, startWorkbench } from './server.js'
export type { WorkbenchServer, WorkbenchApp } from './server.js'
export { ensureBundle, buildBundle } from './bundle.js'
export { runExperiment, logitLens, patching, attention, steering } from './experiments.js'
export { workbenchCommand, backendOptionsOf } from './cli.js'
export * from './shared/experiments.js'
