"""Admin for all models, with a takedown action (block the token by its hash).

Pictures and short links come from uploads and the site: the admin neither adds them nor
edits their tokens (a token is the picture itself), and a slug it edits is one the site can route."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .services import tokens
from .models import SLUG_RE, Album, BlockedToken, EncodeJob, Picture, ShortLink
from .services.errors import ServiceError


@admin.action(description="Block (take down) the selected items' tokens")
def block_tokens(modeladmin, request, queryset) -> None:
    blocked = already = encoding = 0
    for obj in queryset:
        if not obj.token_sha256:  # a short link reserved for an upload still being encoded
            encoding += 1
            continue
        if BlockedToken.objects.filter(token_sha256=obj.token_sha256).exists():
            already += 1
            continue
        tokens.block_token(obj.token_sha256, by=request.user, reason=f"admin action on {obj._meta.verbose_name} {obj.pk}")
        blocked += 1
    skipped = [f"{already} already blocked" if already else "", f"{encoding} still encoding (no token yet)" if encoding else ""]
    messages.success(request, f"Blocked {blocked} token(s)." + "".join(f" Skipped: {s}." for s in skipped if s))


class NotAddedByHand:
    """Rows the site makes (from uploads and links), never the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Picture)
class PictureAdmin(NotAddedByHand, admin.ModelAdmin):
    list_display = ("id", "title", "owner", "album", "model_name", "width", "height", "created")
    search_fields = ("title", "token_sha256", "owner__username")
    list_filter = ("model_name",)
    readonly_fields = ("token", "token_sha256", "created")
    actions = [block_tokens]


class ShortLinkForm(forms.ModelForm):
    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if not SLUG_RE.match(slug):
            raise forms.ValidationError("A slug has 1-64 letters, digits, '-' and '_' (it is a URL path segment).")
        return slug


@admin.register(ShortLink)
class ShortLinkAdmin(NotAddedByHand, admin.ModelAdmin):
    form = ShortLinkForm
    list_display = ("slug", "owner", "hits", "expires_at", "created")
    search_fields = ("slug", "token_sha256", "owner__username")
    readonly_fields = ("token", "token_sha256", "hits", "created")
    actions = [block_tokens]


class PictureInline(NotAddedByHand, admin.TabularInline):
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
class EncodeJobAdmin(NotAddedByHand, admin.ModelAdmin):
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
