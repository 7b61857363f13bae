// Engine worker entry: registers tsx so the workspace's TypeScript sources load in this thread, then starts the worker.
import { register } from 'tsx/esm/api'
register()
await import('./engine-worker.ts')
