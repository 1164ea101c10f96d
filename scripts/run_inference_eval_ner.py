"""Universal NER (JSON output) inference + entity F1. Logic: midalign.tasks.ner_cli."""

from midalign.tasks.ner_cli import main

if __name__ == "__main__":
    main()
