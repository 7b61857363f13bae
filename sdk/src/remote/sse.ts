/** A minimal Server-Sent Events reader over a fetch Response body (event name + JSON data per message). */
export interface SseMessage { event: string; data: string; id?: string }

export async function * readSse (response: Response): AsyncGenerator<SseMessage> {
  if (response.body === null) return
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '')
      const message: SseMessage = { event: 'message', data: '' }
      const data: string[] = []
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') message.event = value
        else if (field === 'data') data.push(value)
        else if (field === 'id') message.id = value
      }
      if (data.length === 0) continue
      message.data = data.join('\n')
      yield message
    }
  }
}
