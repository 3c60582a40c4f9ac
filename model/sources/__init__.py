"""Candidate sources, one module each, behind one contract (:mod:`.base`).

- :mod:`.history`: the user's recent items, their cart, what they bought (evidence only);
- :mod:`.covisit`: successors of their recent items, at two time scales;
- :mod:`.trending`: what sells overall, in the user's categories, and the embedding index's
  nearest neighbours.

:class:`model.candidates.Candidates` merges them and computes the features the ranker scores.
"""
