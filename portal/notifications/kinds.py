"""The messages we send, by kind: Django template strings rendered once, when the outbox row is
written, so a retry sends exactly what the change described."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    subject: str
    body: str
    sms: str = ""  # shorter text for SMS; the body when empty
    # Longer emails live in template files (templates/emails/): the text part replaces `body`
    # when set, and the HTML part is sent as the email's alternative.
    text_template: str = ""
    html_template: str = ""
    # The message carries a credential (a set-password link): the outbox admin hides its body.
    secret: bool = False


def _email(subject: str, template: str, *, secret: bool = False) -> Kind:
    """An email whose text and HTML parts are templates/emails/<template>.txt and .html."""
    return Kind(
        subject=subject,
        body="",
        text_template=f"emails/{template}.txt",
        html_template=f"emails/{template}.html",
        secret=secret,
    )


KINDS: dict[str, Kind] = {
    "driver.active": Kind(
        subject="You can take deliveries",
        body="Your Mallrun driver account is active: go online to receive offers.",
    ),
    "driver.document_expired": Kind(
        subject="Your {{ document }} has expired",
        body=(
            "Your {{ document }} expired on {{ expires_on|date:'M d, Y' }}. You will not receive offers "
            "until a valid one is on file: send it to Mallrun operations."
        ),
    ),
    "driver.document_expiring": Kind(
        subject="Your {{ document }} runs out on {{ expires_on|date:'M d' }}",
        body=(
            "Your {{ document }} is valid through {{ expires_on|date:'M d, Y' }}. Send the renewed one to "
            "Mallrun operations before then to keep receiving offers."
        ),
    ),
    "offer": Kind(
        subject="New route: ${{ pay }}",
        body=(
            "{{ stops }} stop{{ stops|pluralize }}, {{ miles }} mi, about {{ minutes }} min from {{ mall }}. "
            "Answer by {{ answer_by }}: {{ link }}"
        ),
        sms=(
            "Mallrun: new route ${{ pay }}, {{ stops }} stop{{ stops|pluralize }}, {{ miles }} mi from {{ mall }}. "
            "Answer by {{ answer_by }}: {{ link }}"
        ),
    ),
    "route.cancelled": Kind(
        subject="Your route was cancelled",
        body="Every order on your route at {{ mall }} was cancelled: you need not go.",
    ),
    "route.replanned": Kind(
        subject="Your route at {{ mall }} changed",
        body=(
            "Your route at {{ mall }} was re-planned: {{ why }}. Now {{ stops }} stop{{ stops|pluralize }}, "
            "{{ packages }} package{{ packages|pluralize }}, {{ miles }} mi, about {{ minutes }} min, "
            "${{ pay }}. Open the Mallrun driver app for the new order of drops."
        ),
        sms=(
            "Mallrun: your route at {{ mall }} changed ({{ why }}): {{ stops }} stop{{ stops|pluralize }}, "
            "${{ pay }}. See the app."
        ),
    ),
    "route.assigned": Kind(
        subject="Route {{ route }} is yours: ${{ pay }}",
        body=(
            "A Mallrun operator gave you route {{ route }} at {{ mall }}: {{ stops }} stop{{ stops|pluralize }}, "
            "{{ miles }} mi, about {{ minutes }} min, ${{ pay }}. Open the Mallrun driver app for your pickup code."
        ),
        sms="Mallrun: route {{ route }} at {{ mall }} is yours, ${{ pay }}. Your pickup code is in the app.",
    ),
    "route.taken_back": Kind(
        subject="Route {{ route }} went to another driver",
        body="A Mallrun operator gave route {{ route }} at {{ mall }} to another driver: you need not go.",
    ),
    "driver.arriving": Kind(
        subject="{{ driver }} is coming to {{ store }}",
        body=(
            "{{ driver }} took route {{ route }} and is on the way to {{ store }} to collect {{ packages }} "
            "package{{ packages|pluralize }}. Ask for the pickup code on their phone."
        ),
    ),
    "driver.checked_in": Kind(
        subject="{{ driver }} is at {{ store }}",
        body="{{ driver }} is at your counter for route {{ route }}: please hand over {{ packages }} "
        "package{{ packages|pluralize }}.",
    ),
    "route.at_risk": Kind(
        subject="Route {{ route }} at {{ mall }} needs an operator",
        body="{{ alert }} Open route {{ route }} in the admin to re-offer it or call the store.",
    ),
    # Store onboarding (issue 6): applications and staff invitations, text and HTML parts.
    "store.invitation": _email("Set up your Mallrun account for {{ store }}", "store_invitation", secret=True),
    "store.added": _email("You were added to {{ store }} on Mallrun", "store_added"),
    "application.received": _email("We received your application for {{ store_name }}", "application_received"),
    "application.approved": _email(
        "{{ store_name }} is approved for Mallrun same-day delivery", "application_approved"
    ),
    "application.rejected": _email("Your Mallrun application for {{ store_name }}", "application_rejected"),
    # Password reset (portal/accounts_forms.py): the link is a credential.
    "account.password_reset": _email("Reset your Mallrun password", "password_reset", secret=True),
}
