"""Regenerate tests/assets/tokenizer/ (a ~500-token byte-level BPE with a ChatML template).

    python tests/assets/make_tokenizer.py
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

HERE = Path(__file__).parent
CORPUS = """
wake me up at nine am on friday. set an alarm for seven thirty. what is the weather in berlin tomorrow?
play some jazz music. turn off the lights in the kitchen. remind me to call mom at noon.
weck mich am freitag um neun uhr. stell einen wecker für halb acht. wie ist das wetter morgen in berlin?
réveille-moi à neuf heures vendredi. mets une alarme pour sept heures et demie. quel temps fera-t-il demain ?
despiértame a las nueve el viernes. pon una alarma a las siete y media. ¿qué tiempo hará mañana?
金曜日の午前九時に起こして。 七時半にアラームをセットして。 明日のベルリンの天気は？
разбуди меня в девять утра в пятницу. поставь будильник на семь тридцать. какая погода завтра?
time: nine am; date: friday. None. place_name: berlin. alarm_type: wake up.
"""
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def main() -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([CORPUS] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(HERE / "tokenizer")


if __name__ == "__main__":
    main()
