// Tokenizer worker entry: registers tsx so the workspace's TypeScript sources load in this thread, then starts it.
import { register } from 'tsx/esm/api'
register()
await import('./tokenizer-worker.ts')
