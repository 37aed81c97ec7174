/**
 * The parts of three.js the result viewers use, imported by name so the bundle carries only those (a
 * namespace import would take the whole library). Loaded on demand: only a page showing a 3D result pays.
 */

export {
  Box3,
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
export { PLYLoader } from 'three/examples/jsm/loaders/PLYLoader.js'
export { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js'
