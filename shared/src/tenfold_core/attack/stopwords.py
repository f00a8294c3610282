"""Tenfold's English stop-word list (function words, pronouns, auxiliaries, negations), written for this project.

Attacks never substitute these words (TextAttack's ``StopwordModification``). The same list is written as an nltk
``stopwords/english`` corpus file so that TextAttack imports without downloading nltk data.
"""

from __future__ import annotations

_WORDS = """
a about above across after afterwards again against all almost alone along already also although always am among
amongst an and another any anyhow anyone anything anyway anywhere are aren't around as at
be became because become becomes becoming been before beforehand behind being below beside besides between beyond both
but by
can cannot could couldn't
did didn't do does doesn't doing don't done down due during
each either else elsewhere enough even ever every everyone everything everywhere except
few for former formerly from further
had hadn't has hasn't have haven't having he hence her here hereafter hereby herein hereupon hers herself him himself
his how however
i if in indeed into is isn't it it's its itself
just
latter latterly least less
many may me meanwhile might mine more moreover most mostly much must my myself
namely neither never nevertheless next no nobody none noone nor not nothing now nowhere
o of off on once one only onto or other others otherwise our ours ourselves out over own
per perhaps please
rather
same shall she should shouldn't since so some somehow someone something sometime sometimes somewhere still such
than that that's the their theirs them themselves then thence there thereafter thereby therefore therein thereupon
these they this those though through throughout thru thus to together too toward towards
under unless until up upon us used
very via
was wasn't we were weren't what whatever when whence whenever where whereafter whereas whereby wherein whereupon
wherever whether which while whither who whoever whole whom whose why will with within without won't would wouldn't
yet you you're your yours yourself yourselves
"""

STOPWORDS: frozenset[str] = frozenset(_WORDS.split())
