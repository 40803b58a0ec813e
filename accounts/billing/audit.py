"""Read-only checks that the money adds up (used by `audit_credits` and the tests)."""

from django.db.models import Count, Q, Sum

from accounts.models import CreditEntry, User


def audit_mismatches() -> list[str]:
    from generations.models import Generation

    problems: list[str] = []
    sums = dict(
        CreditEntry.objects.values("user_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("user_id", "total")
    )
    for user_id, username, balance in User.objects.values_list("id", "username", "balance_cents"):
        total = sums.get(user_id) or 0
        if balance != total:
            problems.append(f"user {username}: balance {balance} != ledger sum {total}")

    counts = {
        row["reference"]: row
        for row in CreditEntry.objects.filter(reference__startswith="generation:")
        .values("reference")
        .annotate(
            charges=Count("id", filter=Q(kind=CreditEntry.Kind.CHARGE)),
            refunds=Count("id", filter=Q(kind=CreditEntry.Kind.REFUND)),
            charged=Sum("amount_cents", filter=Q(kind=CreditEntry.Kind.CHARGE)),
            refunded=Sum("amount_cents", filter=Q(kind=CreditEntry.Kind.REFUND)),
        )
    }
    seen: set[str] = set()
    for gen_id, status, cost in Generation.objects.values_list("id", "status", "cost_cents").iterator():
        reference = f"generation:{gen_id}"
        seen.add(reference)
        row = counts.get(reference, {"charges": 0, "refunds": 0, "charged": 0, "refunded": 0})
        if row["charges"] != 1:
            problems.append(f"generation {gen_id}: {row['charges']} charge entries, expected 1")
        elif -row["charged"] != cost:
            problems.append(f"generation {gen_id}: charged {-row['charged']}, cost is {cost}")
        expected_refunds = 1 if status == Generation.Status.FAILED else 0
        if row["refunds"] != expected_refunds:
            problems.append(
                f"generation {gen_id} ({status}): "
                f"{row['refunds']} refund entries, expected {expected_refunds}"
            )
        elif expected_refunds and row["refunded"] != cost:
            problems.append(f"generation {gen_id}: refunded {row['refunded']}, cost is {cost}")
    for reference in counts.keys() - seen:
        problems.append(f"ledger entries name {reference}, which does not exist")
    return problems
