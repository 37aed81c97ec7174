/**
 * The parts of three.js the result viewers use, imported by name so the bundle carries only those (a
 * namespace import would take the whole library). Loaded on demand: only a page showing a 3D result pays.
 */

import { PerspectiveCamera, Scene, WebGLRenderer } from 'three'
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js'

export {
  Box3,
  BufferAttribute,
  BufferGeometry,
  Color,
  DirectionalLight,
  HemisphereLight,
  PerspectiveCamera,
  Points,
  PointsMaterial,
  Scene,
  Vector3,
  WebGLRenderer,
} from 'three'
export type { Mesh, MeshStandardMaterial } from 'three'
export { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js'
export { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js'


/** What both viewers share: a renderer in `host` sized to it, a camera with orbit controls, the frame loop. */
export interface OrbitStage {
  renderer: WebGLRenderer
  scene: Scene
  camera: PerspectiveCamera
  controls: OrbitControls
  /** Stops the loop and frees the renderer; the viewer frees what it added to the scene. */
  dispose: () => void
}

export function createOrbitStage(host: HTMLElement, options: { fov: number; far: number; transparent: boolean }): OrbitStage {
  const renderer = new WebGLRenderer({ antialias: true, alpha: options.transparent, preserveDrawingBuffer: true })
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2))
  host.appendChild(renderer.domElement)
  const scene = new Scene()
  const camera = new PerspectiveCamera(options.fov, 1, 0.01, options.far)
  const controls = new OrbitControls(camera, renderer.domElement)
  controls.enableDamping = true
  const resize = () => {
    const width = host.clientWidth
    const height = Math.max(260, Math.min(520, width * 0.75))
    renderer.setSize(width, height)
    camera.aspect = width / height
    camera.updateProjectionMatrix()
  }
  resize()
  const observer = new ResizeObserver(resize)
  observer.observe(host)
  let frame = 0
  const animate = () => {
    frame = requestAnimationFrame(animate)
    controls.update()
    renderer.render(scene, camera)
  }
  animate()
  return {
    renderer,
    scene,
    camera,
    controls,
    dispose: () => {
      cancelAnimationFrame(frame)
      observer.disconnect()
      controls.dispose()
      renderer.dispose()
      renderer.domElement.remove()
    },
  }
}
