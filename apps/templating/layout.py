"""The email layout (templates/email/notification.html) with the tenant's branding."""

from django.template.loader import render_to_string


def branded_html(subject: str, body_html: str, tenant: dict, unsubscribe_url: str = "") -> str:
    return render_to_string(
        "email/notification.html",
        {
            "subject": subject,
            "body_html": body_html,
            "tenant": tenant,
            "unsubscribe_url": unsubscribe_url,
        },
    )
