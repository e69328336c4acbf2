"""Embedding transfer on a tiny WordPiece tokenizer and tiny BERT models (seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import DOMAIN, REFERENCE, tiny_config, tiny_wordpiece
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertForMaskedLM

from nlptransfer.embeddings import (
    StaticVectors,
    count_words,
    embeddings_tied,
    extend_tokenizer,
    extend_vocabulary,
    fragmented_words,
    initialize_new_embeddings,
    load_extended_peft_model,
    lora_config_for_new_tokens,
    mine_domain_vocabulary,
    resize_embeddings,
    sparsemax,
    tokenizer_fertility,
    train_static_vectors,
    word_pieces,
)
from nlptransfer.errors import ConfigError, DataError, ModelError


def tiny_mlm(tokenizer, tie: bool = True, seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer), tie_word_embeddings=tie)
    return BertForMaskedLM(config).eval()


@pytest.fixture
def tok(tmp_path):
    return AutoTokenizer.from_pretrained(tiny_wordpiece(tmp_path / "tiny-wp"))


def test_fertility_and_fragmented_words(tok):
    report = tokenizer_fertility(tok, DOMAIN)
    assert report.fertility > 1.3 and 0 < report.fragmented_rate < 1
    top = fragmented_words(tok, DOMAIN, top_k=3)
    assert top[0]["word"] == "hepatocellular" and top[0]["pieces"] == ["he", "##pa", "##to", "##cellular"]
    assert [r["extra_pieces"] for r in top] == sorted((r["extra_pieces"] for r in top), reverse=True)


def test_mining_returns_frequent_fragmented_domain_words(tok):
    found = mine_domain_vocabulary(tok, DOMAIN, REFERENCE, size=3, min_count=3)
    words = [c.word for c in found]
    assert words[0] == "hepatocellular"  # 15 occurrences x 3 extra pieces
    assert set(words) <= {"hepatocellular", "carcinoma", "cholangiocarcinoma", "lymphoma", "melanoma"}
    assert all(len(c.pieces) >= 2 and c.domain_count >= 3 for c in found)
    assert "patients" not in words  # one token already


def test_mining_asks_for_more_than_candidates(tok):
    with pytest.raises(ConfigError, match=r"only 3 candidates pass.*at most 3"):
        mine_domain_vocabulary(tok, DOMAIN, REFERENCE, size=50, min_count=3)


def test_empty_corpus_is_a_data_error(tok):
    with pytest.raises(DataError, match="no text"):
        tokenizer_fertility(tok, ["", "  \n"])


def test_extension_keeps_old_ids_and_tokenises_words_whole(tok):
    old_vocab = tok.get_vocab()
    sample = "Hepatocellular carcinoma, hepatocellularly and nonhepatocellular"
    old_ids = tok(sample)["input_ids"]
    new, ids = extend_tokenizer(tok, ["Hepatocellular", "carcinoma", "patients"])
    assert ids == [len(old_vocab), len(old_vocab) + 1]  # "patients" is one token already: skipped
    assert {k: v for k, v in new.get_vocab().items() if k in old_vocab} == old_vocab
    assert new.tokenize(sample)[:3] == ["hepatocellular", "carcinoma", ","]
    assert new.tokenize("hepatocellularly") == ["hepatocellular", "##ly"]  # longest match, a vocab entry
    assert "hepatocellular" not in new.tokenize("nonhepatocellular")  # not split out of another word
    assert tok(sample)["input_ids"] == old_ids  # the input tokenizer is unchanged
    assert tokenizer_fertility(new, DOMAIN).fertility < tokenizer_fertility(tok, DOMAIN).fertility


def test_added_tokens_method_matches_whole_words_only(tok):
    new, ids = extend_tokenizer(tok, ["hepatocellular"], method="added_tokens")
    assert new.tokenize("hepatocellular carcinoma")[0] == "hepatocellular"
    assert "hepatocellular" not in new.tokenize("nonhepatocellular")
    assert ids == [len(tok)]


def test_mean_init_is_mean_of_old_pieces_and_tied_stay_tied(tok):
    model = tiny_mlm(tok, tie=True)
    before = model.get_input_embeddings().weight.detach().clone()
    new, ext = extend_vocabulary(model, tok, ["hepatocellular", "lymphoma"], init="mean")
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(new) == len(tok) + 2 and model.config.vocab_size == len(new)
    assert torch.equal(emb[: len(tok)], before)  # old rows unchanged
    pieces = tok.convert_tokens_to_ids(["he", "##pa", "##to", "##cellular"])
    torch.testing.assert_close(emb[ext.new_ids[0]], before[pieces].mean(0))
    assert embeddings_tied(model)
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()


def test_untied_output_embeddings_are_initialised_too(tok):
    model = tiny_mlm(tok, tie=False)
    out_before = model.get_output_embeddings().weight.detach().clone()
    _, ext = extend_vocabulary(model, tok, ["lymphoma"], init="mean")
    assert not embeddings_tied(model)
    pieces = tok.convert_tokens_to_ids(["l", "##ym", "##ph", "##oma"])
    torch.testing.assert_close(
        model.get_output_embeddings().weight[ext.new_ids[0]], out_before[pieces].mean(0)
    )


def test_focus_init_weights_similar_tokens(tok):
    model = tiny_mlm(tok)
    before = model.get_input_embeddings().weight.detach().clone()
    # aux space: "lymphoma" is close to "patients" and "study", far from everything else
    words = ["lymphoma", "patients", "study", "movie", "film"]
    vectors = np.array([[1, 0.1, 0], [1, 0, 0], [0.9, 0.2, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32)
    _, ext = extend_vocabulary(
        model, tok, ["lymphoma", "melanoma"], "focus", aux_vectors=StaticVectors(words, vectors)
    )
    row = model.get_input_embeddings().weight[ext.new_ids[0]]
    ids = tok.convert_tokens_to_ids(["patients", "study"])
    # the new row is a convex mix of the two nearest tokens' embeddings (sparsemax drops the rest)
    mix = torch.linalg.lstsq(before[ids].T, row[:, None]).solution.ravel()
    assert torch.allclose(mix.sum(), torch.tensor(1.0), atol=1e-4) and (mix > -1e-4).all()
    assert ext.stats["fallback_to_mean"] == 1  # melanoma has no aux vector: mean of its pieces
    mel = tok.convert_tokens_to_ids(["mel", "##ano", "##ma"])
    torch.testing.assert_close(model.get_input_embeddings().weight[ext.new_ids[1]], before[mel].mean(0))


def test_sparsemax_is_a_sparse_distribution():
    p = sparsemax(torch.tensor([3.0, 1.0, 0.2]))
    assert torch.allclose(p.sum(), torch.tensor(1.0)) and p[1] == 0 and p[2] == 0


def test_random_init_is_seeded(tok):
    rows = []
    for _ in range(2):
        model = tiny_mlm(tok)
        _, ext = extend_vocabulary(model, tok, ["lymphoma"], init="random", seed=3)
        rows.append(model.get_input_embeddings().weight[ext.new_ids[0]].detach().clone())
    torch.testing.assert_close(rows[0], rows[1])


def test_save_reload_extended_model_same_outputs(tok, tmp_path):
    model = tiny_mlm(tok)
    new, _ = extend_vocabulary(model, tok, ["hepatocellular", "carcinoma"], init="mean")
    model.save_pretrained(tmp_path / "m")
    new.save_pretrained(tmp_path / "m")
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "m").eval()
    tok2 = AutoTokenizer.from_pretrained(tmp_path / "m")
    batch = tok2(["hepatocellular carcinoma in patients"], return_tensors="pt")
    assert tok2.tokenize("hepatocellular carcinoma") == ["hepatocellular", "carcinoma"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
    assert embeddings_tied(loaded)


def test_save_reload_with_lora_restores_new_rows(tok, tmp_path):
    from peft import get_peft_model

    model = tiny_mlm(tok)
    new, ext = extend_vocabulary(model, tok, ["hepatocellular", "lymphoma"], init="mean")
    peft_model = get_peft_model(
        model, lora_config_for_new_tokens(ext.new_ids, target_modules=["query", "value"])
    )
    with torch.no_grad():  # as if trained: move the adapter and the new rows away from their init
        for p in peft_model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    peft_model.eval()
    batch = new(["hepatocellular lymphoma in patients"], return_tensors="pt")
    with torch.no_grad():
        expected = peft_model(**batch).logits
    peft_model.save_pretrained(tmp_path / "adapter", save_embedding_layers=True)
    new.save_pretrained(tmp_path / "adapter")
    base = tiny_mlm(tok)  # a fresh base with the old vocabulary, as a user would load it
    reloaded = load_extended_peft_model(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, expected)


def test_tokenizer_without_extendable_vocabulary(tok):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    class PythonTokenizer:  # a slow tokenizer: no tokenizers backend to extend
        is_fast = False

    with pytest.raises(ModelError, match="cannot be extended"):
        extend_tokenizer(PythonTokenizer(), ["lymphoma"])
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    word_level = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    with pytest.raises(ModelError, match="needs a WordPiece tokenizer, this one is WordLevel"):
        extend_tokenizer(word_level, ["lymphoma"], method="vocab")


def test_model_without_resizable_embeddings(tok):
    class NoEmbeddings(torch.nn.Module):
        def get_input_embeddings(self):
            raise NotImplementedError

    with pytest.raises(ModelError, match="cannot be resized"):
        extend_vocabulary(NoEmbeddings(), tok, ["lymphoma"])
    with pytest.raises(ModelError, match="drop trained rows"):
        resize_embeddings(tiny_mlm(tok), 5)


def test_bad_init_method(tok):
    with pytest.raises(ConfigError, match="unknown init method"):
        initialize_new_embeddings(tiny_mlm(tok), tok, tok, [1], method="zeros")


def test_static_vectors_trained_on_corpus(tok):
    vecs = train_static_vectors(tok, DOMAIN + REFERENCE, dim=4, min_count=2)
    assert vecs.vectors.shape == (len(vecs.words), 4) and "hepatocellular" in vecs.index


def test_word_counts_follow_the_tokenizer_normaliser(tok):
    counts = count_words(tok, ["Hepatocellular, CARCINOMA."])
    assert counts == {"hepatocellular": 1, ",": 1, "carcinoma": 1, ".": 1}
    assert word_pieces(tok, ["carcinoma"]) == [["car", "##cino", "##ma"]]


@pytest.mark.slow
def test_real_minilm_mines_pubmed_words_and_extension_lowers_fertility():
    from nlptransfer.assets import resolve_model
    from nlptransfer.data import load_source
    from nlptransfer.embeddings import reference_texts

    texts = list(load_source("pubmed-abstracts-unindexed", label_column=None)["train"]["text"])[:1000]
    tok = AutoTokenizer.from_pretrained(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
    found = mine_domain_vocabulary(tok, texts, reference_texts(), size=100)
    words = [c.word for c in found]
    assert len(words) == 100 and {"covid", "pandemic", "carcinoma"} & set(words[:30])
    assert not {"patients", "study", "were"} & set(words)  # one token already or common in general English
    new, _ = extend_tokenizer(tok, words)
    before, after = tokenizer_fertility(tok, texts), tokenizer_fertility(new, texts)
    assert after.fertility < before.fertility and after.fragmented_rate < before.fragmented_rate
