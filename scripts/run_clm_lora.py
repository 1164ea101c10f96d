"""Paper-compatible training entry point: every flag of the paper's scripts/run_clm_lora.py and every
transformers TrainingArguments flag. All logic lives in midalign.training."""

from midalign.training.run import main

if __name__ == "__main__":
    main()
