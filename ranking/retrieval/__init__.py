"""Candidate retrieval (issue 6): shopper/item two-tower model, item-to-item co-visitation
and popularity baselines, their training data from the event log and their evaluation
(docs/retrieval.md). Entry points: `ranking.retrieval.services`."""
