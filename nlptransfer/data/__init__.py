"""Load any dataset: `load_source(source)` turns an embedded name, a local file/folder or a Hub id into
train/validation/test with a `text` column and a `label` ClassLabel (or a multi-label `labels` column).

Modules, one concern each:

- `load`: `load_source`, the entry point (sources, column renaming, empty texts, the order of checks), and
  `load_whole` (every row of a source, unsplit);
- `eval_files`: the test sets of a run (`--eval_datasets`, `--eval_files`, per-entry column options);
- `corpus`: `load_corpus`, the train and held-out texts of a corpus for continued pretraining;
- `files`: reading local files and folders (`EXTENSIONS`, `check_utf8`, split names of files);
- `labels`: single-label checks and encoding, `is_multilabel`, `label_names`, `check_eval_labels`;
- `multilabel`: list-valued labels, `;`-lists in .csv/.tsv, several 0/1 columns;
- `splits`: `SplitProtocol`, carving missing splits, and THE one seeded stratified `subsample`;
- `registry`: the embedded dataset names (`EMBEDDED_DATASETS`, `embedded_dataset`);
- `vader`, `pubmed`, `bible`: the embedded corpora (`bible`: parallel data for translation);
- `multitask`: task specs and task data of multi-task learning (imports torch, so not re-exported here).
"""

from nlptransfer.data.corpus import load_corpus
from nlptransfer.data.files import EXTENSIONS, check_utf8
from nlptransfer.data.labels import check_eval_labels, is_multilabel, label_names
from nlptransfer.data.load import load_source, load_whole
from nlptransfer.data.registry import EMBEDDED_DATASETS, PUBMED_PROTOCOL, EmbeddedDataset, embedded_dataset
from nlptransfer.data.splits import DEFAULT_PROTOCOL, SplitProtocol, subsample, subsample_indices
from nlptransfer.data.vader import VADER_DOMAINS, VADER_PROTOCOL, load_vader, read_vader, vader_label

__all__ = [
    "DEFAULT_PROTOCOL",
    "EMBEDDED_DATASETS",
    "EXTENSIONS",
    "PUBMED_PROTOCOL",
    "VADER_DOMAINS",
    "VADER_PROTOCOL",
    "EmbeddedDataset",
    "SplitProtocol",
    "check_eval_labels",
    "check_utf8",
    "embedded_dataset",
    "is_multilabel",
    "label_names",
    "load_corpus",
    "load_source",
    "load_whole",
    "load_vader",
    "read_vader",
    "subsample",
    "subsample_indices",
    "vader_label",
]
