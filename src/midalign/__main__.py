"""``python -m midalign <command>``: the same as the ``midalign`` console script."""

from .cli import main

if __name__ == "__main__":
    main()
