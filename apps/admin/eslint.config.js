// The web app's rules, so both apps read alike.
export { default } from '../web/eslint.config.js'
