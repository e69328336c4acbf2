"""Embedding transfer to a domain: measure a tokenizer, mine domain vocabulary, extend, initialise.

A pretrained tokenizer cuts domain words it never saw into many pieces ("hepatocellular" ->
he ##pa ##to ##cellular). This package measures how badly, finds the words worth adding, adds them so
that they tokenise as wholes, grows the model's embedding matrix (old ids unchanged, tied output
embeddings kept tied) and gives the new rows a starting point better than noise.

Measure (`vocabulary`)
    `tokenizer_fertility(tokenizer, texts)` -> `FertilityReport`: subwords per word, share of word
    occurrences split into 2+ pieces (fragmented) or containing the unknown token.
    `fragmented_words(tokenizer, texts, top_k)`: the words that cost the most extra pieces
    (frequency x (pieces - 1)).
    Words are what the tokenizer's own normaliser and pre-tokeniser produce (BERT: lower-cased,
    split on whitespace and punctuation), so "word" means the same thing before and after extension.

Mine (`vocabulary`)
    `mine_domain_vocabulary(tokenizer, domain_texts, reference_texts, size)`: alphabetic words that are
    frequent in the domain (>= `min_count`), rare in general text (domain rate / reference rate per
    million words >= `min_ratio`, add-one smoothed) and badly fragmented by the model's own vocabulary
    (>= `min_pieces` pieces); ranked by the pieces they would save on the domain corpus
    (count x (pieces - 1)). `reference_texts()` gives a general-English reference offline: the 23.7k VADER
    snippets (tweets, movie and product reviews, NYT editorials); `reference_texts(source)` another corpus.

Extend (`tokenizer`: `extend_tokenizer`; `method`)
    `vocab` (WordPiece fast tokenizers, the default there): the words become entries of the WordPiece
    vocabulary itself, so they take part in longest-match-first tokenisation like any pretrained
    entry: "hepatocellularly" -> hepatocellular ##ly, and a word inside another word is not split
    out. `added_tokens` (any fast tokenizer): `add_tokens` with `AddedToken(single_word=True)`: the
    word only matches as a whole word (plain `add_tokens` would split "nonhepatocellular" into
    non + hepatocellular). New ids are appended after every existing id: old ids never change.
    `tokenizer.add_unigram_pieces` adds sentencepiece-style subwords with their scores to a Unigram model.

Resize and initialise (`init`; auxiliary vectors in `static`)
    `resize_embeddings(model, n)` grows input (and tied output) embeddings; `initialize_new_embeddings`
    fills the new rows with
    - `random`: what `model.resize_token_embeddings` gives by default in transformers 5 (rows drawn
      from a normal with the old embeddings' mean and covariance): the baseline users get today;
    - `mean`: the mean of the embeddings of the word's old subword pieces;
    - `focus`: FOCUS-style (Dobler & de Melo, EMNLP 2023): in an auxiliary static word-vector space
      (`load_glove()`, GloVe 6B-50d, or `train_static_vectors()` on the domain corpus) find the
      existing vocabulary tokens most similar to the new word; the new row is their embeddings
      weighted by `sparsemax` of the cosine similarities. Words missing from the auxiliary space fall
      back to `mean` (counted in the returned stats).
    Output embeddings that are not tied get the same treatment; an output bias (and Marian/BART's
    `final_logits_bias`) gets the mean (or weighted mean) of the pieces' biases (`initialize_rows`).

One call (`extend`)
    `extend_vocabulary(model, tokenizer, words, init=...)`: extend + resize + initialise, for words
    (the returned `VocabularyExtension` also records how the old tokenizer cut each word);
    `extend_domain_vocabulary(model, tokenizer, domain_texts, size=...)` mines the words first.
    `extend_subword_vocabulary(model, tokenizer, pieces)`: the same for sentencepiece-style subwords
    (a translation child's pieces the parent lacks), each row the mean of its old pieces' rows.

Continued pretraining (`pretraining`): `load_mlm_model` (AutoModelForMaskedLM, naming the head weights
the checkpoint lacked), `MaskingCollator` (whole-word masking that pads `offset_mapping`), `encode_for_mlm`,
`mlm_features` (one truncated example per text, or `pack_features`: texts concatenated and cut into blocks),
`mlm_loss` (held-out masked-LM loss with a seeded masking; `perplexity`), `train_mlm` (a `MaskedLMTrainer`:
`masked_lm_loss` applies the head to the masked positions only, the same loss for a fraction of the cost),
`warm_up_head` (`head_warmup`: a new MLM head trained alone, `encoder_frozen`, before the encoder trains),
the recipe's options `DomainPretrainingArguments` (`options`; `--corpus task` = `TASK_CORPUS`),
`save_domain_model` (plus the base checkpoint's pooler). An extended model is a normal checkpoint (`save_pretrained` writes the larger
`vocab_size` and the extended `tokenizer.json`). With LoRA, `lora_config_for_new_tokens` returns a peft
`LoraConfig` that trains the new rows through `trainable_token_indices` (`mlm_lora_model` wraps a masked-LM
model with it), and the model must be saved with `save_embedding_layers=True` so that the adapter carries
the initialised rows; reload with `load_extended_peft_model` (resize the base to the tokenizer, then
`PeftModel.from_pretrained`). Words to add can come from a file (`read_word_list`).
"""

from nlptransfer.embeddings.extend import (
    VocabularyExtension,
    extend_domain_vocabulary,
    extend_subword_vocabulary,
    extend_vocabulary,
)
from nlptransfer.embeddings.head_warmup import HeadWarmup, encoder_frozen, new_head_note, warm_up_head
from nlptransfer.embeddings.init import (
    INIT_METHODS,
    embeddings_tied,
    initialize_new_embeddings,
    initialize_rows,
    resize_embeddings,
    sparsemax,
)
from nlptransfer.embeddings.options import TASK_CORPUS, DomainPretrainingArguments
from nlptransfer.embeddings.pretraining import (
    MaskedLMTrainer,
    MaskingCollator,
    encode_for_mlm,
    feature_stats,
    load_extended_peft_model,
    load_mlm_model,
    lora_config_for_new_tokens,
    masked_lm_loss,
    mlm_features,
    mlm_head,
    mlm_lora_model,
    mlm_loss,
    pack_features,
    perplexity,
    save_domain_model,
    train_mlm,
)
from nlptransfer.embeddings.static import StaticVectors, load_glove, train_static_vectors
from nlptransfer.embeddings.tokenizer import extend_tokenizer
from nlptransfer.embeddings.vocabulary import (
    Candidate,
    FertilityReport,
    count_words,
    fragmented_words,
    mine_domain_vocabulary,
    read_word_list,
    reference_texts,
    tokenizer_fertility,
    word_pieces,
)

__all__ = [
    "Candidate",
    "DomainPretrainingArguments",
    "FertilityReport",
    "HeadWarmup",
    "INIT_METHODS",
    "MaskedLMTrainer",
    "MaskingCollator",
    "StaticVectors",
    "TASK_CORPUS",
    "VocabularyExtension",
    "count_words",
    "embeddings_tied",
    "encode_for_mlm",
    "encoder_frozen",
    "extend_domain_vocabulary",
    "extend_subword_vocabulary",
    "extend_tokenizer",
    "extend_vocabulary",
    "feature_stats",
    "fragmented_words",
    "initialize_new_embeddings",
    "initialize_rows",
    "load_extended_peft_model",
    "load_glove",
    "load_mlm_model",
    "lora_config_for_new_tokens",
    "masked_lm_loss",
    "mine_domain_vocabulary",
    "mlm_features",
    "mlm_head",
    "mlm_lora_model",
    "new_head_note",
    "mlm_loss",
    "pack_features",
    "perplexity",
    "read_word_list",
    "reference_texts",
    "resize_embeddings",
    "save_domain_model",
    "sparsemax",
    "tokenizer_fertility",
    "train_mlm",
    "train_static_vectors",
    "warm_up_head",
    "word_pieces",
]
