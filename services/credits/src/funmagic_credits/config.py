"""Settings of the credits service, read from the environment."""

from pydantic import Field, SecretStr

from funmagic_kit.settings import DatabaseSettings, ServiceSettings


class CreditsSettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8003, validation_alias="HTTP_PORT", ge=1, le=65535)
    # Granted once per new account (UserRegistered); 0 turns the bonus off.
    signup_bonus_credits: int = Field(50, validation_alias="SIGNUP_BONUS_CREDITS", ge=0)
    # Stripe: the API base is configurable so tests (and a proxy) can stand in for api.stripe.com.
    stripe_api_base: str = Field("https://api.stripe.com", validation_alias="STRIPE_API_BASE")
    stripe_secret_key: SecretStr = Field(SecretStr(""), validation_alias="STRIPE_SECRET_KEY")
    stripe_webhook_secret: SecretStr = Field(SecretStr(""), validation_alias="STRIPE_WEBHOOK_SECRET")
    stripe_webhook_tolerance_seconds: int = Field(
        300, validation_alias="STRIPE_WEBHOOK_TOLERANCE_SECONDS", ge=1
    )
    checkout_success_url: str = Field(
        "http://localhost:5173/credits?checkout=success", validation_alias="CHECKOUT_SUCCESS_URL"
    )
    checkout_cancel_url: str = Field(
        "http://localhost:5173/credits?checkout=cancelled", validation_alias="CHECKOUT_CANCEL_URL"
    )
