import { describe, expect, it } from 'vitest'
import { SseParser } from './sseParser'

describe('SseParser', () => {
  it('reads the gateway frames: retry, connected without id, events with ids', () => {
    const parser = new SseParser()
    const result = parser.feed(
      'retry: 3000\n\nevent: connected\ndata: {"userId":"u"}\n\nid: 1-0\nevent: progress\ndata: {"taskId":"t","progress":40}\n\n',
    )
    expect(result.retryMs).toBe(3000)
    expect(result.messages).toEqual([
      { id: null, event: 'connected', data: '{"userId":"u"}' },
      { id: '1-0', event: 'progress', data: '{"taskId":"t","progress":40}' },
    ])
  })

  it('joins frames split anywhere across chunks, including inside a CRLF', () => {
    const parser = new SseParser()
    const text = 'id: 7-1\r\nevent: completed\r\ndata: {"taskId":"t"}\r\n\r\n'
    const seen = []
    for (const chunk of [text.slice(0, 5), text.slice(5, 21), text.slice(21, 40), text.slice(40)]) {
      seen.push(...parser.feed(chunk).messages)
    }
    expect(seen).toEqual([{ id: '7-1', event: 'completed', data: '{"taskId":"t"}' }])
  })

  it('counts heartbeat comments and keeps them out of the messages', () => {
    const parser = new SseParser()
    const result = parser.feed(': heartbeat\n\n: heartbeat\n\n')
    expect(result.comments).toBe(2)
    expect(result.messages).toEqual([])
  })

  it('joins multi-line data with newlines and defaults the type to message', () => {
    const result = new SseParser().feed('data: a\ndata: b\n\n')
    expect(result.messages).toEqual([{ id: null, event: 'message', data: 'a\nb' }])
  })
})
