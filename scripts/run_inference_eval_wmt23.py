"""WMT23 translation inference + BLEU/chrF (paper-compatible flags). Logic: midalign.tasks.translation_cli."""

from midalign.tasks.translation_cli import main

if __name__ == "__main__":
    main()
