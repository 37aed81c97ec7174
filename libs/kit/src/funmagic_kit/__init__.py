"""The shared runtime every FunMagic service is built on. See libs/kit/README.md."""
