"""The journal's invariants, kept by the database.

PostgreSQL:
- ``books_entry_balanced``: a DEFERRABLE INITIALLY DEFERRED constraint trigger on entries. At
  commit, every entry inserted or posted in the transaction must have lines and balance per
  currency (SQLSTATE TB002).
- ``books_line_guard`` (BEFORE INSERT/UPDATE/DELETE on lines): lines of a posted entry are
  never updated or deleted, and none are added to an entry posted by an earlier transaction
  (TB001). It copies the entry's date onto the line and refuses a date in a closed period
  (TB003).
- ``books_entry_guard`` (BEFORE UPDATE/DELETE on entries): a posted entry never changes
  (TB001); only draft → posted is allowed. Entries are refused in closed periods (TB003).
- ``books_period_guard``: a closed period never reopens and is never deleted (TB004).
- An entry is dated inside its own period, and one with lines keeps its date and period
  (TB005). The period row is read ``FOR SHARE`` by every check, so writers and a close in
  flight wait for each other.

Not covered: a transaction that runs ``SET CONSTRAINTS books_entry_balanced IMMEDIATE`` and then
adds lines to its own posted entry (a deliberate act in raw SQL; the services never do it), and
``TRUNCATE``.

SQLite (the embedded default): the UPDATE refusals and the period lock are triggers too;
balance and DELETE refusal are enforced by the service layer (``books.services``) only,
because Django's test flush empties tables with DELETE and SQLite cannot tell the two apart.
"""

from django.db import migrations

PG = r"""
-- The period row is read FOR SHARE: a writer waits for a close in flight (which holds the row
-- FOR UPDATE) and then reads the status that close committed; a close waits for writers in
-- flight, so its report sees their lines. An ordinary read would let a line be dated into a
-- period whose close committed a moment before the writer did.
CREATE FUNCTION books_period_locked(day date) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  found_status text;
BEGIN
  SELECT p.status INTO found_status FROM books_fiscalperiod p
    WHERE day BETWEEN p.start AND p."end" FOR SHARE;
  RETURN COALESCE(found_status = 'closed', false);
END $$;

-- True when a row's xmin belongs to this transaction (or one of its savepoints): the entry was
-- written by us, so its lines may still be added until commit. A row whose writer is still in
-- progress is visible only to that writer.
CREATE FUNCTION books_xid_is_ours(x bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  cur bigint := pg_current_xact_id()::text::bigint;
  epoch bigint := cur >> 32;
  full_xid bigint;
BEGIN
  full_xid := (epoch << 32) + x;  -- nearest to the current xid: savepoints' xids come after it
  IF full_xid > cur + 2147483648 THEN
    full_xid := full_xid - 4294967296;
  ELSIF full_xid < cur - 2147483648 THEN
    full_xid := full_xid + 4294967296;
  END IF;
  RETURN pg_xact_status(full_xid::text::xid8) = 'in progress';
END $$;

CREATE FUNCTION books_line_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  e RECORD;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    SELECT status INTO e FROM books_journalentry WHERE id = OLD.entry_id;
    IF e.status = 'posted' THEN
      RAISE EXCEPTION 'journal line % belongs to posted entry %: posted entries are never changed, post a reversal', OLD.id, OLD.entry_id
        USING ERRCODE = 'TB001';
    END IF;
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
  END IF;
  SELECT status, date, xmin::text::bigint AS x INTO e
    FROM books_journalentry WHERE id = NEW.entry_id;
  IF e.status = 'posted' AND NOT books_xid_is_ours(e.x) THEN
    RAISE EXCEPTION 'entry % is posted: no line can be added to it', NEW.entry_id
      USING ERRCODE = 'TB001';
  END IF;
  NEW.date := e.date;
  IF books_period_locked(NEW.date) THEN
    RAISE EXCEPTION 'period of % is closed: no journal line can be dated into it', NEW.date
      USING ERRCODE = 'TB003';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER books_line_guard BEFORE INSERT OR UPDATE OR DELETE ON books_journalline
  FOR EACH ROW EXECUTE FUNCTION books_line_guard();

CREATE FUNCTION books_entry_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'posted' THEN
    RAISE EXCEPTION 'journal entry % is posted: posted entries are never changed, post a reversal', OLD.id
      USING ERRCODE = 'TB001';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  IF books_period_locked(NEW.date) THEN
    RAISE EXCEPTION 'period of % is closed: no journal entry can be dated into it', NEW.date
      USING ERRCODE = 'TB003';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM books_fiscalperiod p WHERE p.id = NEW.period_id
                 AND NEW.date BETWEEN p.start AND p."end") THEN
    RAISE EXCEPTION 'journal entry % is dated % outside its period', NEW.id, NEW.date
      USING ERRCODE = 'TB005';
  END IF;
  -- Lines carry their entry's date: an entry that has lines keeps its date and period.
  IF TG_OP = 'UPDATE' AND (NEW.date <> OLD.date OR NEW.period_id <> OLD.period_id)
     AND EXISTS (SELECT 1 FROM books_journalline WHERE entry_id = OLD.id) THEN
    RAISE EXCEPTION 'journal entry % has lines: its date and period cannot change', OLD.id
      USING ERRCODE = 'TB005';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER books_entry_guard BEFORE INSERT OR UPDATE OR DELETE ON books_journalentry
  FOR EACH ROW EXECUTE FUNCTION books_entry_guard();

CREATE FUNCTION books_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad RECORD;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM books_journalentry WHERE id = NEW.id AND status = 'posted') THEN
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM books_journalline WHERE entry_id = NEW.id) THEN
    RAISE EXCEPTION 'posted journal entry % has no lines', NEW.id USING ERRCODE = 'TB002';
  END IF;
  SELECT currency, sum(debit) AS debit, sum(credit) AS credit INTO bad
    FROM books_journalline WHERE entry_id = NEW.id
    GROUP BY currency HAVING sum(debit) <> sum(credit) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % does not balance in %: debits % but credits %',
      NEW.id, bad.currency, bad.debit, bad.credit USING ERRCODE = 'TB002';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER books_entry_balanced AFTER INSERT OR UPDATE ON books_journalentry
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION books_entry_balanced();

CREATE FUNCTION books_period_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'closed' AND (TG_OP = 'DELETE' OR NEW.status <> 'closed'
      OR NEW.start <> OLD.start OR NEW."end" <> OLD."end") THEN
    RAISE EXCEPTION 'period % is closed: it never reopens', OLD.code USING ERRCODE = 'TB004';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER books_period_guard BEFORE UPDATE OR DELETE ON books_fiscalperiod
  FOR EACH ROW EXECUTE FUNCTION books_period_guard();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS books_period_guard ON books_fiscalperiod;
DROP TRIGGER IF EXISTS books_entry_balanced ON books_journalentry;
DROP TRIGGER IF EXISTS books_entry_guard ON books_journalentry;
DROP TRIGGER IF EXISTS books_line_guard ON books_journalline;
DROP FUNCTION IF EXISTS books_period_guard(), books_entry_balanced(), books_entry_guard(),
  books_line_guard(), books_period_locked(date), books_xid_is_ours(bigint);
"""

SQLITE = [
    """CREATE TRIGGER books_line_no_update BEFORE UPDATE ON books_journalline
       WHEN (SELECT status FROM books_journalentry WHERE id = OLD.entry_id) = 'posted'
       BEGIN SELECT RAISE(ABORT, 'posted journal entries are never changed (TB001)'); END""",
    """CREATE TRIGGER books_entry_no_update BEFORE UPDATE ON books_journalentry
       WHEN OLD.status = 'posted'
       BEGIN SELECT RAISE(ABORT, 'posted journal entries are never changed (TB001)'); END""",
    """CREATE TRIGGER books_line_period_lock BEFORE INSERT ON books_journalline
       WHEN EXISTS (SELECT 1 FROM books_fiscalperiod p WHERE NEW.date BETWEEN p.start
                    AND p."end" AND p.status = 'closed')
       BEGIN SELECT RAISE(ABORT, 'the period is closed (TB003)'); END""",
    """CREATE TRIGGER books_period_no_reopen BEFORE UPDATE ON books_fiscalperiod
       WHEN OLD.status = 'closed' AND NEW.status <> 'closed'
       BEGIN SELECT RAISE(ABORT, 'a closed period never reopens (TB004)'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS books_line_no_update",
    "DROP TRIGGER IF EXISTS books_entry_no_update",
    "DROP TRIGGER IF EXISTS books_line_period_lock",
    "DROP TRIGGER IF EXISTS books_period_no_reopen",
]


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(PG)
        else:
            for statement in SQLITE:
                cursor.execute(statement)


def uninstall(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(PG_DROP)
        else:
            for statement in SQLITE_DROP:
                cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("books", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
