from funmagic_identity.bootstrap import SPEC
from funmagic_kit.runtime import main

if __name__ == "__main__":
    main(SPEC)
