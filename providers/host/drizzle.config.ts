/** drizzle-kit config: `npx drizzle-kit generate --config providers/host/drizzle.config.ts` writes the versioned SQL migrations. */
import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'sqlite',
  schema: './providers/host/src/store/schema.ts',
  out: './providers/host/drizzle',
})
