from funmagic_kit.runtime import main
from funmagic_storage.bootstrap import SPEC

if __name__ == "__main__":
    main(SPEC)
