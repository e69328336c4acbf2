# The user's verbs. `make sentiment` and `make test` work on a fresh clone with only Python 3.10+ installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nlptransfer-setup
ARGS   ?=

.PHONY: setup sentiment text-classification compare translation domain-pretraining bench-domain bench-dapt bench-translation-parent domain-adaptation \
	domain-matrix domain-matrix-quick multitask distill bench-distill bench-multitask fewshot wordvec bench-fewshot \
	bench-wordvec test test-fast bench lint clean

setup: $(STAMP)

# Install pinned, tested versions (constraints.txt) and fetch the embedded offline assets into the cache.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,explain,tensorboard,export,serve,hpo,tracking]'
	$(BIN)/python -m nlptransfer.assets fetch minilm vader vader-lexicon pubmed bible
	touch $(STAMP)

# Fine-tune the embedded MiniLM on VADER movies, test on four domains. Extra flags: make sentiment ARGS="..."
sentiment: setup
	$(BIN)/python -m nlptransfer.recipes.sentiment $(ARGS)

# PubMed publication types (default) or any data: make text-classification ARGS="--dataset my.csv ..."
text-classification: setup
	$(BIN)/python -m nlptransfer.recipes.text_classification $(ARGS)

# Did transfer help? TF-IDF, scratch, frozen/LoRA/full over 3 seeds and 2 data sizes (about an hour on 2 cores).
compare: setup
	$(BIN)/python -m nlptransfer.recipes.text_classification --config recipes/text_classification/minilm_pubmed_compare.yaml $(ARGS)

# Translation-pair transfer: es->en parent (trained once, cached), it->en child from scratch vs from the parent
# (12 min on an idle 2-core CPU, 3 min once the parent is cached). Extra flags: make translation ARGS="..."
translation: setup
	$(BIN)/python -m nlptransfer.recipes.translation_pair $(ARGS)

# Continued masked-LM pretraining of MiniLM on pubmed-pubtype's own training texts (TAPT, the default); DAPT on
# PubMed abstracts: ARGS="--config recipes/domain_pretraining/minilm_pubmed_dapt.yaml"; ARGS="--extend_vocab 500" adds
# domain words. Output: a model for --model_name_or_path.
domain-pretraining: setup
	$(BIN)/python -m nlptransfer.recipes.domain_pretraining $(ARGS)

# Base vs +vocabulary vs +DAPT vs both on pubmed-pubtype, 3 seeds (about an hour on a busy 2-core CPU).
bench-domain: setup
	$(BIN)/python -m benchmarks.bench_domain_transfer $(ARGS)

# pubmed-pubtype macro-F1 after 0, 200, 400, 800 steps of TAPT and DAPT, 3 seeds (benchmarks/bench_dapt.py; ~65-70
# min on a quiet 2-core CPU; ARGS="--quick" for a smoke test).
bench-dapt: setup
	$(BIN)/python -m benchmarks.bench_dapt $(ARGS)

# Learning curve of the offline translation parent (greedy BLEU every 500 steps; about 9 min).
bench-translation-parent: setup
	$(BIN)/python -m benchmarks.bench_translation_parent $(ARGS)

# Labelled movies -> unlabelled tweets: no adaptation vs DANN, CORAL, MMD, importance weights (frozen MiniLM).
domain-adaptation: setup
	$(BIN)/python -m nlptransfer.recipes.domain_adaptation $(ARGS)

DA         := $(BIN)/python -m nlptransfer.recipes.domain_adaptation
DA_FULL    := --config recipes/domain_adaptation/minilm_full.yaml
DA_TARGETS := vader-tweets vader-amazon vader-nyt
DA_QUICK_METHODS ?= none coral self_training
# The lexicon teacher's measured setting (README): its own class proportions, every confident text, one round
DA_LEXICON := --teacher lexicon --pseudo_balance proportional --pseudo_threshold 0.67 --pseudo_top_k 5000 \
	--self_training_rounds 1

# The full domain-adaptation table (~10 h on 2 cores, from step counts; the recipe YAMLs give the budgets):
# 1. every VADER source -> target pair, frozen MiniLM, 5 methods x 3 seeds (cross_domain.md/.csv/.png beside
#    the 2014 paper's Table 5; ~1.5-2 h);
# 2. the 12 pairs with the encoder adapting (full, `none`, 1 seed; ~50 min): LogME / H-score on the pooled
#    features vs the trained ranking (Spearman/Kendall; benchmarks/bench_source_selection.py re-reads it);
# 3. movies -> tweets/amazon/nyt, every method incl. self_training, full fine-tuning, 3 seeds + the guard
#    (~40 min per target and seed);
# 4. the same targets, self_training from the VADER lexicon teacher, 3 seeds (~1 min per target and seed).
domain-matrix: setup
	$(DA) --matrix true --seeds 3 --method none dann coral mmd iw --output_dir outputs/domain-matrix $(ARGS)
	$(DA) $(DA_FULL) --matrix true --method none --seeds 1 --negative_transfer_guard false \
		--output_dir outputs/domain-matrix-full $(ARGS)
	for t in $(DA_TARGETS); do \
		$(DA) $(DA_FULL) --target $$t --seeds 3 --output_dir outputs/domain-full-movies-$${t#vader-} $(ARGS) || exit 1; \
		$(DA) $(DA_FULL) --target $$t --method self_training $(DA_LEXICON) --seeds 3 \
			--negative_transfer_guard false --output_dir outputs/domain-lexicon-movies-$${t#vader-} $(ARGS) || exit 1; \
	done

# The documented subset (< 2 h on 2 cores): movies -> tweets/amazon/nyt with the encoder adapting, 1 seed,
# `none`, CORAL and self-training, then self-training from the lexicon teacher. Measured as a whole (2026-12-02,
# idle 2-core CPU): 31.5 min wall (9-12 min per target), peak RSS 5.4 GB. Other methods: make domain-matrix-quick DA_QUICK_METHODS="none dann self_training"
domain-matrix-quick: setup
	for t in $(DA_TARGETS); do \
		$(DA) $(DA_FULL) --target $$t --seeds 1 --method $(DA_QUICK_METHODS) --negative_transfer_guard false \
			--output_dir outputs/domain-quick-movies-$${t#vader-} $(ARGS) || exit 1; \
		$(DA) $(DA_FULL) --target $$t --method self_training $(DA_LEXICON) --seeds 1 \
			--negative_transfer_guard false --output_dir outputs/domain-quick-lexicon-$${t#vader-} $(ARGS) || exit 1; \
	done

# One shared MiniLM, four VADER tasks (3 x 3-class sentiment + rating regression) vs each task alone.
multitask: setup
	$(BIN)/python -m nlptransfer.recipes.multitask $(ARGS)

# Fine-tune a MiniLM teacher, distil it into a 2-layer student (logits + relational KD), then time both.
distill: setup
	$(BIN)/python -m nlptransfer.recipes.distill $(ARGS)
	$(BIN)/python -m benchmarks.bench_distillation --speed_only --run outputs/distill-minilm-vader

# Issue 19 evidence (the lead runs these alone): distillation 5 seeds (paired test, speed at batch 1/64), and
# multi-task vs compute-matched single-task controls, 3 seeds x 3 variants. Smoke test: ARGS=--quick.
bench-distill: setup
	$(BIN)/python -m benchmarks.bench_distillation $(ARGS)

bench-multitask: setup
	$(BIN)/python -m benchmarks.bench_multitask $(ARGS)

# Few labels: 16 movie snippets per class of negative and positive, contrastive (SetFit-style) tuning of MiniLM
# then logistic regression; tested 3-class on all four VADER domains (~1 min).
fewshot: setup
	$(BIN)/python -m nlptransfer.recipes.sentiment --config recipes/sentiment/minilm_fewshot.yaml $(ARGS)

# Word vectors carried into a classifier: GloVe 6B-50d fine-tuned under a small MLP (the first run converts the
# GloVe asset once, ~1 min; training well under a minute). recipes/sentiment/glove_frozen.yaml: vectors fixed.
wordvec: setup
	$(BIN)/python -m nlptransfer.recipes.sentiment --config recipes/sentiment/glove_full.yaml $(ARGS)

# Issue 17 evidence (run alone): full fine-tuning vs frozen + logistic regression vs contrastive at K examples
# per class over seeds; GloVe frozen / fine-tuned, domain vectors, random init, TF-IDF and MiniLM over seeds
# and training sizes, with prediction texts/s. Narrow them with ARGS (see each script's --help).
bench-fewshot: setup
	$(BIN)/python -m benchmarks.bench_fewshot $(ARGS)

bench-wordvec: setup
	$(BIN)/python -m benchmarks.bench_wordvec $(ARGS)

# Unit tests on tiny models plus the few slow tests on the real embedded assets.
# Two pytest workers (pytest-xdist), one torch thread each (tests/conftest.py): most of a tiny-model test is
# single-threaded Python, so two workers on two cores halve the wall time. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(ARGS)

# Unit tests only (seconds).
test-fast: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow" $(ARGS)

# Speed and accuracy benchmarks (not tests): results in benchmarks/results/.
bench: setup
	$(BIN)/python -m benchmarks.bench_features
	$(BIN)/python -m benchmarks.bench_trainer
# ONNX export (issue 20) of the sentiment run, which `make sentiment` trains first if it is missing (~10 min)
	test -f outputs/sentiment-minilm-full/config.json || $(BIN)/python -m nlptransfer.recipes.sentiment
	$(BIN)/python -m benchmarks.bench_export outputs/sentiment-minilm-full --out benchmarks/results/export
	$(BIN)/python -m benchmarks.bench_serve --run outputs/sentiment-minilm-full --out benchmarks/results/serve

lint: setup
	$(BIN)/ruff check nlptransfer tests benchmarks
	$(BIN)/ruff format --check nlptransfer tests benchmarks

# Removes the virtualenv and build leftovers. Run outputs (outputs/) and the asset cache are yours to delete.
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
