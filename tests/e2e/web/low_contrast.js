// Each element with text whose contrast is below WCAG's minimum (4.5:1; 3:1 for large text), as
// "ratio text (colours)". Backgrounds are composited from the element up to the first opaque one (a tag's
// tint over its card), and the text's own alpha over that; text over an image or a gradient is left out.
// Evaluated in the page by tests/e2e/web/test_contrast.py.
() => {
  const rgba = (value) => {
    const m = value.match(/[\d.]+/g)
    if (!m) return null
    const [r, g, b, a] = m.map(Number)
    return [r, g, b, a === undefined ? 1 : a]
  }
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3])).concat(1)
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4
    })
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
  }
  // The colour behind `el`, or null when an image or a gradient is part of it.
  const background = (el) => {
    const layers = []
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node)
      if (style.backgroundImage !== 'none') return null
      const colour = rgba(style.backgroundColor)
      if (colour && colour[3] > 0) {
        layers.push(colour)
        if (colour[3] >= 1) break
      }
    }
    return layers.reverse().reduce((below, top) => over(top, below), [255, 255, 255, 1])
  }
  const low = []
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim())) continue
    const box = el.getBoundingClientRect()
    if (box.width === 0 || box.height === 0) continue
    const style = getComputedStyle(el)
    if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue
    // `:disabled`, not `[disabled]`: a Naive button drawn as a link carries disabled="false".
    const exempt = ':disabled, [aria-disabled="true"], .n-button--disabled, .n-input--disabled, .sr-only'
    if (el.closest(exempt)) continue
    const behind = background(el)
    if (behind === null) continue
    const text = over(rgba(style.color), behind)
    const [light, dark] = [luminance(text), luminance(behind)].sort((a, b) => b - a)
    const ratio = (light + 0.05) / (dark + 0.05)
    const size = parseFloat(style.fontSize)
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66)
    if (ratio < (large ? 3 : 4.5) - 0.005) {
      const shown = el.textContent.trim().slice(0, 40)
      low.push(`${ratio.toFixed(2)} "${shown}" (${style.color} on ${behind.map(Math.round).slice(0, 3)})`)
    }
  }
  return low
}
