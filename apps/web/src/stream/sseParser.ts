/**
 * An incremental parser of `text/event-stream` (the WHATWG "event stream interpretation"): feed it text
 * chunks as they arrive, get whole events back. Comments (`: heartbeat`) are reported separately so a
 * client can tell a quiet but live connection from a dead one.
 */

export interface SseMessage {
  id: string | null
  event: string
  data: string
}

export interface SseParseResult {
  messages: SseMessage[]
  comments: number
  retryMs: number | null
}

export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | null = null
  private hasId = false

  feed(chunk: string): SseParseResult {
    this.buffer += chunk
    const result: SseParseResult = { messages: [], comments: 0, retryMs: null }
    let newline = this.nextLineEnd()
    while (newline !== -1) {
      const line = this.buffer.slice(0, newline)
      const skip = this.buffer[newline] === '\r' && this.buffer[newline + 1] === '\n' ? 2 : 1
      this.buffer = this.buffer.slice(newline + skip)
      this.takeLine(line, result)
      newline = this.nextLineEnd()
    }
    return result
  }

  private nextLineEnd(): number {
    const lf = this.buffer.indexOf('\n')
    const cr = this.buffer.indexOf('\r')
    if (cr === -1) return lf
    if (lf === -1) return cr === this.buffer.length - 1 ? -1 : cr // a lone CR at the end may be a CRLF
    return Math.min(lf, cr)
  }

  private takeLine(line: string, result: SseParseResult): void {
    if (line === '') {
      this.dispatch(result)
      return
    }
    if (line.startsWith(':')) {
      result.comments += 1
      return
    }
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        break
      case 'event':
        this.event = value
        break
      case 'id':
        if (!value.includes('\0')) {
          this.id = value
          this.hasId = true
        }
        break
      case 'retry':
        if (/^\d+$/.test(value)) result.retryMs = Number(value)
        break
      default:
        break // unknown fields are ignored, as the standard says
    }
  }

  private dispatch(result: SseParseResult): void {
    if (this.data.length > 0) {
      result.messages.push({
        id: this.hasId ? this.id : null,
        event: this.event || 'message',
        data: this.data.join('\n'),
      })
    }
    this.data = []
    this.event = ''
    this.id = null
    this.hasId = false
  }
}
