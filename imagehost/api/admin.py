from django.contrib import admin, messages

from imagehost.admin import BoundedAdmin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(BoundedAdmin, admin.ModelAdmin):
    """Tokens can be seen and revoked here (for good: only the action sets Revoked at); their
    values were never stored."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "prefix", "digest", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are created by their users, on /api/tokens/

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        live = list(queryset.filter(revoked_at__isnull=True))
        for token in live:
            token.revoke()
        messages.success(request, f"Revoked {len(live)} token(s)." + (f" {len(queryset) - len(live)} were revoked already." if len(queryset) > len(live) else ""))
