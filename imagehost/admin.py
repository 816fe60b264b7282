"""Admin for all models, with a takedown action (block the token by its hash)."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .services import tokens
from .models import Album, BlockedToken, EncodeJob, Picture, ShortLink
from .services.errors import ServiceError


@admin.action(description="Block (take down) the selected items' tokens")
def block_tokens(modeladmin, request, queryset) -> None:
    for obj in queryset:
        tokens.block_token(obj.token_sha256, by=request.user, reason=f"admin action on {obj._meta.verbose_name} {obj.pk}")
    messages.success(request, f"Blocked {queryset.count()} token(s).")


@admin.register(Picture)
class PictureAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "album", "model_name", "width", "height", "created")
    search_fields = ("title", "token_sha256", "owner__username")
    list_filter = ("model_name",)
    readonly_fields = ("token_sha256", "created")
    actions = [block_tokens]


@admin.register(ShortLink)
class ShortLinkAdmin(admin.ModelAdmin):
    list_display = ("slug", "owner", "hits", "expires_at", "created")
    search_fields = ("slug", "token_sha256", "owner__username")
    readonly_fields = ("token_sha256", "hits", "created")
    actions = [block_tokens]


class PictureInline(admin.TabularInline):
    model = Picture
    fields = ("title", "position", "width", "height")
    readonly_fields = ("width", "height")
    extra = 0
    show_change_link = True


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "visibility", "slug", "created")
    list_filter = ("visibility",)
    search_fields = ("title", "slug", "owner__username")
    inlines = [PictureInline]


@admin.register(EncodeJob)
class EncodeJobAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "attempts", "sends", "owner", "source_bytes", "created", "finished")
    list_filter = ("status",)
    readonly_fields = ("status", "attempts", "sends", "error", "picture", "source_bytes", "created", "updated", "started",
                       "heartbeat_at", "finished")
    exclude = ("source",)


class BlockTokenForm(forms.ModelForm):
    token_or_hash = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Paste the token, a token URL (/i/… or /image?q=…), a short URL (/s/…) or its sha256.",
        required=False,
    )

    class Meta:
        model = BlockedToken
        fields = ("token_or_hash", "reason")

    def clean(self):
        data = super().clean()
        value = (data.get("token_or_hash") or "").strip()
        if not value:
            if not self.instance.pk:
                raise forms.ValidationError("Give a token or its sha256.")
            return data
        try:
            data["token_or_hash"] = tokens.takedown_identity(value)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc
        if BlockedToken.objects.filter(token_sha256=data["token_or_hash"]).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("That token is already blocked.")
        return data


@admin.register(BlockedToken)
class BlockedTokenAdmin(admin.ModelAdmin):
    form = BlockTokenForm
    list_display = ("token_sha256", "reason", "created_by", "created")
    search_fields = ("token_sha256", "reason")

    def save_model(self, request, obj, form, change) -> None:
        value = form.cleaned_data.get("token_or_hash")
        if value:
            obj.token_sha256 = value  # the identity, from BlockTokenForm.clean
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
