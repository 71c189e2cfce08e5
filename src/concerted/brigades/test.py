"""Test: co-reporting pairs (S2) against randomised copies of the reports, in rounds.

After a round that finds significant reporters, their reports are set aside and the
rest is tested again, as long as the accounts left still hold a candidate
(``min_reporters`` accounts in exclusive pairs of ``attach_weight`` or more that were
not significant): a smaller brigade beside a big one is then tested against a null
that the big one does not fill.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from concerted.brigades.workspace import CO_REPORT, Workspace, columns
from concerted.clock import Clock
from concerted.config import BrigadeSettings
from concerted.detectors.base import Detector
from concerted.detectors.pairing import Pairs
from concerted.significance import Significance

__all__ = ["PAIR_KEY", "exclusive", "rounds"]

#: The columns that name one tie of one detector's layer.
PAIR_KEY = "(detector, layer, platform_1, account_1, platform_2, account_2)"


def exclusive(edges: str, settings: BrigadeSettings) -> str:
    """SQL: the rows ``e`` of ``edges`` whose weight is at least ``min_overlap`` of the
    distinct targets of the less active of the two reporters (``_bg_reported``); more
    conditions follow with ``AND``."""
    return f"""SELECT e.* FROM {edges} e
        JOIN _bg_reported m1 ON m1.platform = e.platform_1 AND m1.actor_id = e.account_1
        JOIN _bg_reported m2 ON m2.platform = e.platform_2 AND m2.actor_id = e.account_2
        WHERE e.weight >= {settings.min_overlap} * least(m1.n, m2.n)"""


def rounds(
    ws: Workspace,
    detector: Detector,
    settings: BrigadeSettings,
    significance: Significance,
    clock: Clock,
    *,
    keep: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]], Pairs | None]:
    """Co-reporting with its significance test, in rounds; its tested edges and its
    events go to ``_bg_edges`` and ``_bg_events``. A pair tested again keeps its
    latest test. With ``keep``, the first round's pairing (of every report) is kept
    and returned for another detector to read. Returns the first round's notes, the
    notes of every round's test, and the pairing kept."""
    con = ws.con
    kept: Pairs | None = None
    ws.table("_bg_set_aside", "SELECT NULL::VARCHAR AS platform, NULL::VARCHAR AS actor_id LIMIT 0")
    done: list[dict[str, Any]] = []
    first_notes: dict[str, Any] = {}
    pairing = getattr(detector, "pairing", None)
    from_pairs = getattr(detector, "from_pairs", None)
    min_weight = int(getattr(detector, "min_weight", 1))
    # The reports' actions, once: the detector and every randomised copy read them.
    actions = "_bg_report_actions"
    for number in range(settings.rounds):
        stage = f"detect {CO_REPORT}" if number == 0 else f"{CO_REPORT} round {number + 1}"
        with clock.stage(stage):
            ws.table(
                actions,
                """SELECT a.* FROM actions a ANTI JOIN _bg_set_aside s
                   USING (platform, actor_id) WHERE a.kind = 'report'""",
            )
            keys: Pairs | None = None
            if callable(pairing) and callable(from_pairs):
                # The pairing is kept for the test, whose copies are made of its rows.
                keys = pairing(con, actions)
                evidence = from_pairs(con, keys)
                if keep and number == 0:
                    kept = keys
                else:
                    evidence = replace(evidence, temporary=(*keys.tables, *evidence.temporary))
            else:
                evidence = detector.detect(con, actions)
            ws.own(*evidence.temporary)
            ws.table("_bg_found", evidence.edges.sql_query())
        with clock.stage(f"test {CO_REPORT}" if number == 0 else f"test round {number + 1}"):
            if keys is not None:
                counts = significance.null_weights_of_pairing(con, keys, min_weight=min_weight)
            else:
                counts = significance.null_weights(con, actions, detector, ("report",))
            tested, tested_notes = significance.test(con, "_bg_found", counts)
            ws.table("_bg_tested", tested.sql_query())
            if number:
                for part in ("edges", "events"):
                    con.execute(
                        f"DELETE FROM _bg_{part} WHERE {PAIR_KEY} IN "
                        f"(SELECT {PAIR_KEY} FROM _bg_tested)"
                    )
            con.execute(f"INSERT INTO _bg_edges SELECT {columns('edges')} FROM _bg_tested")
            con.execute(
                f"INSERT INTO _bg_events SELECT {columns('events')} "
                f"FROM ({evidence.events.sql_query()})"
            )
            ws.table(
                "_bg_new",
                f"""WITH t AS ({exclusive("_bg_tested", settings)} AND e.significant)
                    SELECT platform_1 AS platform, account_1 AS actor_id FROM t
                    UNION SELECT platform_2, account_2 FROM t""",
            )
            found = int(ws.scalar("SELECT count(*) FROM _bg_new"))
            # Another round only pays when the accounts left still hold a candidate
            # brigade: min_reporters accounts in exclusive pairs of attach_weight or
            # more that this round did not find significant.
            candidates = int(
                ws.scalar(
                    f"""WITH t AS ({exclusive("_bg_tested", settings)}
                                  AND NOT coalesce(e.significant, false)
                                  AND e.weight >= {settings.attach_weight}),
                        a AS (SELECT platform_1 AS platform, account_1 AS actor_id FROM t
                              UNION SELECT platform_2, account_2 FROM t)
                        SELECT count(*) FROM a ANTI JOIN _bg_new USING (platform, actor_id)"""
                )
            )
            if number == 0:
                first_notes = evidence.notes
            evidence.release(con)
            ws.drop("_bg_found", "_bg_tested")
        done.append(
            {
                **tested_notes,
                "round": number + 1,
                "reporters_found": found,
                "candidates_left": candidates,
            }
        )
        if not found or candidates < settings.min_reporters:
            break
        con.execute("INSERT INTO _bg_set_aside SELECT * FROM _bg_new")
    ws.drop("_bg_new", "_bg_set_aside", actions)
    if kept is not None:
        ws.own(*kept.tables)
    return first_notes, done, kept
