from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from apps.audit.api import AuditViewSet
from apps.common import errors, health
from apps.escalation.api import (
    ContactViewSet,
    EscalationPolicyViewSet,
    EscalationViewSet,
    SlackInteractionView,
    action_link,
)
from apps.notifications import preferences, tracking
from apps.notifications.api import NotificationViewSet
from apps.notifications.callbacks import TwilioStatusCallbackView
from apps.templating.api import TemplateViewSet
from apps.tenants.api import ApiKeyViewSet, IntegrationViewSet, TenantView

router = SimpleRouter(trailing_slash=True)
router.register("notifications", NotificationViewSet, basename="notification")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("templates", TemplateViewSet, basename="template")
router.register("contacts", ContactViewSet, basename="contact")
router.register("escalation-policies", EscalationPolicyViewSet, basename="escalation-policy")
router.register("escalations", EscalationViewSet, basename="escalation")
router.register("audit", AuditViewSet, basename="audit")

api_v1 = [
    path("tenant/", TenantView.as_view(), name="tenant"),
    path("preferences/<str:user_id>/", preferences.PreferenceView.as_view(), name="preferences"),
    path(
        "callbacks/slack/interactive/",
        SlackInteractionView.as_view(),
        name="slack-interactive-callback",
    ),
    path(
        "callbacks/twilio/<uuid:delivery_id>/",
        TwilioStatusCallbackView.as_view(),
        name="twilio-status-callback",
    ),
    *router.urls,
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("t/o/<str:token>.gif", tracking.opened, name="track-open"),
    path("u/<str:token>/", preferences.unsubscribe, name="unsubscribe"),
    path("e/<str:code>/", action_link, name="escalation-action"),
    path("t/c/<str:token>", tracking.clicked, name="track-click"),
]

handler404 = errors.json_404
handler500 = errors.json_500
handler400 = errors.json_400
