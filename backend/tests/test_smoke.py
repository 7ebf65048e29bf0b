from tests.conftest import UserHandle


async def test_signup_then_me(client, user: UserHandle) -> None:
    response = await client.get("/api/v1/auth/me", headers=user.headers)
    assert response.status_code == 200
    assert response.json()["email"] == user.email
