"""Daily posting: one journal entry per store and business day, computed set-based.

How a run works (``store_days_post``):

1. **High waters.** A short transaction takes ``SHARE`` locks on the source tables (sale
   lines, tenders, stock moves, sessions, cash movements) — which waits for every ingestion
   transaction already writing them to commit — reads the largest id of each, and commits at
   once. Every row with an id at or below those marks is committed from then on, and every
   later row gets a higher id, so a posting that covers ``(previous high, high]`` per
   store-day can never miss a row committed late (ingestion is paused for microseconds only).
2. **Aggregates.** In the posting transaction (serialised by an advisory lock), one
   ``GROUP BY`` statement per source table aggregates the new rows of every store-day whose
   business date is finished (before the store's local today, or up to a given date):
   revenue and output tax per tax code (tax per line, rounded half-up to the currency's minor
   unit, as ingestion computes it), tenders per method, stock moves valued at weighted
   average cost (see :class:`books.models.ItemCost`). Sessions closed and cash movements are
   few and read row by row.
3. **Entries.** Each store-day with something new becomes one entry (``daily_sales``, or
   ``supplementary`` when the day was posted before), dated on its business date — or, when
   that date's period is closed, on the first day of the first open period, flagged
   ``late`` and raised as a ``late_for_closed_period`` exception. Lines go in with ``COPY``.
   A :class:`~books.models.StoreDayPosting` row records the id ranges it covered: that is how
   every sale, return and stock move knows its entry, without an update of the source rows.

Re-running is harmless: ranges already covered are skipped, so a second run posts nothing.
Call it outside any transaction (tasks, the close): inside one, step 1's locks would be held
until that transaction ends.
On SQLite (the embedded default) the aggregates are computed in Python from the same rows,
with the same rounding; the database serialises writers, so no lock is needed.
"""

from books.posting.common import PostingResult
from books.posting.run import store_days_post, store_days_post_on_commit

__all__ = ["PostingResult", "store_days_post", "store_days_post_on_commit"]
