"""Offline adversarial word-substitution attacks under one fixed protocol (TextDefender's).

``import tenfold_core.attack`` prepares the local resources TextAttack would otherwise download at import (nltk
stop words, TextAttack's post-install marker) and never touches the network; TextAttack itself is imported only by
:mod:`tenfold_core.attack.textattack_backend`. Quick start::

    from tenfold_core.attack import Victim, EmbeddingSynonyms, GreedyWordSwapAttack, AttackProtocol, run_attack

    victim = Victim(model, tokenizer)
    attack = GreedyWordSwapAttack(victim, EmbeddingSynonyms.from_victim(victim), AttackProtocol("textfooler"))
    records = run_attack(attack, test.texts, test.labels, out="runs/textfooler.jsonl")
    print(summary_table({"textfooler": records}))
"""

from tenfold_core.attack.offline import (
    cache_dir,
    import_textattack,
    prepare_offline,
    textattack_available,
)

prepare_offline()

from tenfold_core.attack.recipes import RECIPES, AttackProtocol, Recipe, get_recipe  # noqa: E402
from tenfold_core.attack.runner import (  # noqa: E402
    RecordWriter,
    read_records,
    run_attack,
    sample_examples,
    summarize,
    summary_report,
    summary_table,
)
from tenfold_core.attack.search import GreedyWordSwapAttack, QueryBudget  # noqa: E402
from tenfold_core.attack.similarity import (  # noqa: E402
    USE_THRESHOLD,
    HFMeanPoolEncoder,
    SentenceEncoder,
    SimilarityConstraint,
    UniversalSentenceEncoder,
    WordVectorMeanEncoder,
    angular_similarity,
    calibrate_threshold,
    default_encoder,
)
from tenfold_core.attack.stopwords import STOPWORDS  # noqa: E402
from tenfold_core.attack.synonyms import (  # noqa: E402
    DictSynonyms,
    EmbeddingSynonyms,
    MaskedLMSynonyms,
    SynonymSource,
    WordNetSynonyms,
)
from tenfold_core.attack.text import WordText, num_words  # noqa: E402
from tenfold_core.attack.toy import sentiment_synonyms  # noqa: E402
from tenfold_core.attack.victim import (  # noqa: E402
    EnsembleVictim,
    EOTVictim,
    Victim,
    as_victim,
    random_mask_perturbation,
    random_synonym_perturbation,
)

__all__ = [
    "RECIPES",
    "STOPWORDS",
    "USE_THRESHOLD",
    "AttackProtocol",
    "DictSynonyms",
    "EOTVictim",
    "EmbeddingSynonyms",
    "EnsembleVictim",
    "GreedyWordSwapAttack",
    "HFMeanPoolEncoder",
    "MaskedLMSynonyms",
    "QueryBudget",
    "Recipe",
    "RecordWriter",
    "SentenceEncoder",
    "SimilarityConstraint",
    "SynonymSource",
    "UniversalSentenceEncoder",
    "Victim",
    "WordNetSynonyms",
    "WordText",
    "WordVectorMeanEncoder",
    "angular_similarity",
    "as_victim",
    "cache_dir",
    "calibrate_threshold",
    "default_encoder",
    "get_recipe",
    "import_textattack",
    "num_words",
    "prepare_offline",
    "random_mask_perturbation",
    "random_synonym_perturbation",
    "read_records",
    "run_attack",
    "sample_examples",
    "sentiment_synonyms",
    "summarize",
    "summary_report",
    "summary_table",
    "textattack_available",
]
