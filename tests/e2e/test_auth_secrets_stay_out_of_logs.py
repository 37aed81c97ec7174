"""No response or log line carries a password, a password hash, a token or a secret."""

from __future__ import annotations

from clients import bearer, browser, call, sign_in, sign_up, token_from_mail, unique_email


async def test_no_log_line_or_response_contains_a_secret(platform, platform_env) -> None:
    email = unique_email("logs")
    password = "log canary passphrase 913"
    new_password = "log canary replacement 914"
    secrets = {password, new_password, platform_env["INTERNAL_API_TOKEN"], platform_env["SECRET_KEY"]}
    responses: list[str] = []
    async with browser() as client:
        account = await sign_up(client, email, password, mode="token")
        secrets |= {account["access_token"], account["refresh_token"]}
        status, body = await sign_in(client, email, "a wrong password 000", mode="token")
        assert status == 401
        responses.append(str(body))
        status, body, _ = await call(
            client, "POST", "/api/auth/sign-up/email", json={"email": email, "password": password, "x": 1}
        )
        assert status == 422
        responses.append(str(body))
        status, body, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": account["refresh_token"]}
        )
        assert status == 200
        secrets |= {body["access_token"], body["refresh_token"]}
        renewed = body
        status, body, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": account["refresh_token"]}
        )
        assert status == 409, "superseded: another client's refresh with it an instant before"
        responses.append(str(body))
        status, body, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": renewed["refresh_token"]}
        )
        assert status == 200
        secrets |= {body["access_token"], body["refresh_token"]}
        status, body, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": account["refresh_token"]}
        )
        assert status == 401, "reuse of a token older than the last rotation: a leak"
        responses.append(str(body))
        await call(client, "POST", "/api/auth/forgot-password", json={"email": email})
        reset_token = await token_from_mail(email, "password-reset", platform_env["INTERNAL_API_TOKEN"])
        secrets.add(reset_token)
        status, body, _ = await call(
            client, "POST", "/api/auth/reset-password", json={"token": reset_token, "password": "weak"}
        )
        responses.append(str(body))
        status, _, _ = await call(
            client, "POST", "/api/auth/reset-password", json={"token": reset_token, "password": new_password}
        )
        assert status == 204
        status, body, _ = await call(
            client, "GET", "/api/auth/session", headers=bearer(account["access_token"])
        )
        responses.append(str(body))

    logs = {name: service.log_path.read_text(errors="replace") for name, service in platform.items()}
    assert logs["identity"].count("\n") > 5, "the services did log (the check below is not vacuous)"
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"{name}'s log contains a secret"
        assert "$argon2" not in text, f"{name}'s log contains a password hash"
    for body in responses:
        for secret in secrets:
            assert secret not in body
        assert "$argon2" not in body
